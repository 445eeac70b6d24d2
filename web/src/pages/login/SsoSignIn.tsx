import { Alert, Button, Divider, Stack } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";

// Why the server sent the browser back from an SSO callback (/login?ssoError=<code>).
const SSO_ERRORS: Record<string, string> = {
  sso_state_invalid: "That sign-in link was already used or is unknown. Start again.",
  sso_state_expired: "The sign-in took too long. Start again.",
  sso_browser_mismatch: "The sign-in was started in another browser. Start again here.",
  sso_denied: "The identity provider did not sign you in.",
  sso_no_role: "You signed in, but no project gives your groups a role. Ask an admin to map one of your groups.",
  sso_account_exists: "An account with your email already exists and this provider may not sign it in. Ask an admin.",
  sso_domain_not_allowed: "Your email domain is not allowed for this provider.",
  sso_email_unverified: "Your identity provider has not verified your email address.",
  sso_email_missing: "Your identity provider sent no email address.",
  sso_group_overage: "You are in too many groups for the token; ask an admin to emit assigned groups or app roles.",
  sso_idp_unavailable: "The identity provider could not be reached. Try again later.",
};

/** A local path to come back to after signing in, or "/". */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

export function ssoErrorMessage(code: string): string {
  return SSO_ERRORS[code] ?? `Single sign-on failed (${code}).`;
}

/** "Sign in with SSO" for each enabled provider (nothing when there is none), and why the last attempt failed. */
export function SsoSignIn({ next, error }: { next: string | null; error: string | null }) {
  const options = useQuery({
    queryKey: ["sso-providers"],
    queryFn: () => unwrap(api.GET("/api/v1/auth/sso/providers")),
    retry: false,
    staleTime: 60_000,
  });
  const providers = options.data ?? [];
  if (!providers.length && !error) return null;
  return (
    <Stack gap="xs" mt="md">
      {error && (
        <Alert color="red" title="Could not sign in with SSO" role="alert">
          {ssoErrorMessage(error)}
        </Alert>
      )}
      {providers.length > 0 && <Divider label="or" labelPosition="center" />}
      {providers.map((provider) => (
        <Button key={provider.name} component="a" variant="default" href={`${provider.loginUrl}?next=${encodeURIComponent(safeNext(next))}`}>
          {providers.length === 1 ? "Sign in with SSO" : `Sign in with ${provider.displayName}`}
        </Button>
      ))}
    </Stack>
  );
}
