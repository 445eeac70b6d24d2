// My account's second factor (TOTP): start set-up (the secret is shown once, to type or paste into an
// authenticator app), confirm it with a first code, or turn it off with a current code.
import { Alert, Badge, Button, Code, CopyButton, Group, Stack, Text, TextInput } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { ErrorNotice } from "../../components/ErrorNotice";

export function TwoFactor() {
  const client = useQueryClient();
  const state = useQuery({ queryKey: ["totp"], queryFn: () => unwrap(api.GET("/api/v1/auth/totp")) });
  const [setup, setSetup] = useState<Schemas["TotpSetupOut"] | null>(null);
  const [code, setCode] = useState("");
  const refresh = () => client.invalidateQueries({ queryKey: ["totp"] });
  const start = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/totp")),
    onSuccess: async (s) => {
      setSetup(s);
      await refresh();
    },
  });
  const confirm = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/totp/confirm", { body: { code: code.trim() } })),
    onSuccess: async () => {
      setSetup(null);
      setCode("");
      await refresh();
    },
  });
  const disable = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/totp/disable", { body: { code: code.trim() } })),
    onSuccess: async () => {
      setCode("");
      await refresh();
    },
  });
  const enabled = state.data?.enabled ?? false;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    (enabled ? disable : confirm).mutate();
  };
  return (
    <Stack maw={560}>
      <ErrorNotice error={state.error ?? start.error} />
      <Group>
        <Text fw={600}>Two-factor authentication</Text>
        <Badge color={enabled ? "green" : "gray"}>{enabled ? "On" : state.data?.pending ? "Set-up not confirmed" : "Off"}</Badge>
      </Group>
      <Text size="sm">
        With two-factor authentication on, signing in with your password also asks for a 6-digit code from an authenticator app (RFC 6238 TOTP).
      </Text>
      {!enabled && !setup && (
        <Button w="fit-content" onClick={() => start.mutate()} loading={start.isPending}>
          Set up two-factor authentication
        </Button>
      )}
      {setup && (
        <Alert color="blue" title="Add this key to your authenticator app">
          <Stack gap="xs">
            <Text size="sm">It is shown only now. Enter the key by hand, or paste the link into an app that accepts otpauth links.</Text>
            <Group>
              <Code data-testid="totp-secret">{setup.secret}</Code>
              <CopyButton value={setup.secret}>{({ copied, copy }) => <Button size="xs" variant="light" onClick={copy}>{copied ? "Copied" : "Copy key"}</Button>}</CopyButton>
              <CopyButton value={setup.otpauthUri}>{({ copied, copy }) => <Button size="xs" variant="light" onClick={copy}>{copied ? "Copied" : "Copy otpauth link"}</Button>}</CopyButton>
            </Group>
          </Stack>
        </Alert>
      )}
      {(setup || enabled || state.data?.pending) && (
        <form onSubmit={submit} aria-label={enabled ? "Turn two-factor off" : "Confirm two-factor"}>
          <Group align="end">
            <TextInput label={enabled ? "Current code (to turn it off)" : "First code from the app"} autoComplete="one-time-code" inputMode="numeric" required maxLength={12} value={code} onChange={(e) => setCode(e.currentTarget.value)} />
            <Button type="submit" color={enabled ? "red" : undefined} loading={confirm.isPending || disable.isPending}>
              {enabled ? "Turn off" : "Confirm"}
            </Button>
          </Group>
          <ErrorNotice error={confirm.error ?? disable.error} title="The code was not accepted" />
        </form>
      )}
    </Stack>
  );
}
