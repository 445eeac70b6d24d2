import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it } from "vitest";
import LoginPage from "../pages/LoginPage";
import { TwoFactor } from "../pages/settings/TwoFactor";
import { network } from "./network";


afterEach(() => {
  network.handler = null;
});

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function wrap(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={["/login"]}>
          <Routes>
            <Route path="/login" element={children} />
            <Route path="/" element={<p>Home page</p>} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>
  );
}

const SESSION = { token: "pos_x", tokenType: "bearer", expiresAt: "2030-01-01T00:00:00Z", csrfToken: "c", userId: "usr_1", email: "ada@example.com", projectId: "prj_1", role: "Viewer" };

describe("sign in with a second factor", () => {
  it("asks for the code when the server says one is needed, then sends it", async () => {
    const bodies: Record<string, unknown>[] = [];
    network.handler = async (request) => {
      const body = (await request.json()) as Record<string, unknown>;
      bodies.push(body);
      if (!body.totpCode) return json({ status: 401, code: "totp_required", title: "Unauthenticated", detail: "This account needs a two-factor code" }, 401);
      return json(SESSION);
    };
    render(wrap(<LoginPage />));
    await userEvent.type(screen.getByLabelText(/^Email/), "ada@example.com");
    await userEvent.type(screen.getByLabelText(/^Password/), "long-enough-passphrase");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    const code = await screen.findByRole("textbox", { name: /Two-factor code/ });
    expect(screen.queryByText("Could not sign in")).toBeNull(); // a step, not an error
    await userEvent.type(code, "123456");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByText("Home page");
    expect(bodies).toEqual([
      { email: "ada@example.com", password: "long-enough-passphrase" },
      { email: "ada@example.com", password: "long-enough-passphrase", totpCode: "123456" },
    ]);
  });

  it("shows a wrong code as an error", async () => {
    network.handler = async (request) => {
      const body = (await request.json()) as Record<string, unknown>;
      if (!body.totpCode) return json({ status: 401, code: "totp_required", detail: "needs a code" }, 401);
      return json({ status: 401, code: "invalid_totp", title: "Unauthenticated", detail: "Wrong or already used two-factor code" }, 401);
    };
    render(wrap(<LoginPage />));
    await userEvent.type(screen.getByLabelText(/^Email/), "ada@example.com");
    await userEvent.type(screen.getByLabelText(/^Password/), "long-enough-passphrase");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await userEvent.type(await screen.findByRole("textbox", { name: /Two-factor code/ }), "000000");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByText(/Wrong or already used two-factor code/)).toBeInTheDocument();
  });
});

describe("two-factor set-up", () => {
  it("shows the secret once and confirms with a first code", async () => {
    let enabled = false;
    const calls: string[] = [];
    network.handler = async (request) => {
      const path = new URL(request.url).pathname;
      calls.push(`${request.method} ${path}`);
      if (request.method === "GET") return json({ enabled, pending: false, confirmedAt: null });
      if (path.endsWith("/totp")) return json({ secret: "JBSWY3DPEHPK3PXP", otpauthUri: "otpauth://totp/PromptOps:ada?secret=JBSWY3DPEHPK3PXP&issuer=PromptOps" }, 201);
      if (path.endsWith("/confirm")) {
        enabled = true;
        return json({ enabled: true, pending: false, confirmedAt: "2026-12-03T10:00:00Z" });
      }
      return json({}, 404);
    };
    render(wrap(<TwoFactor />));
    await userEvent.click(await screen.findByRole("button", { name: "Set up two-factor authentication" }));
    expect(await screen.findByTestId("totp-secret")).toHaveTextContent("JBSWY3DPEHPK3PXP");
    await userEvent.type(screen.getByRole("textbox", { name: /First code from the app/ }), "654321");
    await userEvent.click(screen.getByRole("button", { name: "Confirm" }));
    await waitFor(() => expect(screen.getByText("On")).toBeInTheDocument());
    expect(screen.queryByTestId("totp-secret")).toBeNull();
    expect(calls).toContain("POST /api/v1/auth/totp/confirm");
  });
});
