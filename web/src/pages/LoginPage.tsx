import { Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { api, ApiError, setCurrentProject, unwrap } from "../api/client";
import { ErrorNotice } from "../components/ErrorNotice";
import { SsoSignIn } from "./login/SsoSignIn";

export default function LoginPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  // Accounts with a second factor: the server answers totp_required, then the form asks for the code.
  const [needsCode, setNeedsCode] = useState(false);
  const [totpCode, setTotpCode] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const client = useQueryClient();
  const navigate = useNavigate();
  const [params] = useSearchParams();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = needsCode ? { email, password, totpCode: totpCode.trim() } : { email, password };
      const session = await unwrap(api.POST("/api/v1/auth/login", { body }));
      setCurrentProject(session.projectId);
      client.removeQueries(); // a new identity: nothing cached for the signed-out page may show
      const next = params.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    } catch (caught) {
      if (caught instanceof ApiError && caught.code === "totp_required") {
        setNeedsCode(true); // not an error: the next step of signing in
        return;
      }
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" component="main">
      <Paper withBorder p="xl" w={380} shadow="sm">
        <form onSubmit={submit} aria-label="Sign in">
          <Stack>
            <Title order={1} size="h3">
              Sign in to PromptOps
            </Title>
            <TextInput label="Email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <PasswordInput label="Password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            {needsCode && (
              <TextInput
                label="Two-factor code"
                description="The 6-digit code from your authenticator app"
                autoComplete="one-time-code"
                inputMode="numeric"
                required
                autoFocus
                maxLength={12}
                value={totpCode}
                onChange={(e) => setTotpCode(e.currentTarget.value)}
              />
            )}
            <ErrorNotice error={error} title="Could not sign in" />
            <Button type="submit" loading={busy}>
              Sign in
            </Button>
          </Stack>
        </form>
        <SsoSignIn next={params.get("next")} error={params.get("ssoError")} />
      </Paper>
    </Center>
  );
}
