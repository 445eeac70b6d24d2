import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signOutTarget } from "../auth";
import LoginPage from "../pages/LoginPage";
import { safeNext } from "../pages/login/SsoSignIn";
import { network } from "./network";


afterEach(() => {
  network.handler = null;
});

function json(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function page(entry: string, children: ReactNode = <LoginPage />) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <MantineProvider>
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={[entry]}>
          <Routes>
            <Route path="/login" element={children} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

function providers(list: { name: string; displayName: string }[]) {
  const asked: string[] = [];
  network.handler = async (request) => {
    asked.push(new URL(request.url).pathname);
    return json(list.map((p) => ({ ...p, loginUrl: `/api/v1/auth/sso/${p.name}/login` })));
  };
  return asked;
}

describe("Sign in with SSO", () => {
  it("offers the organization's provider, returning to the page the user came from", async () => {
    const asked = providers([{ name: "corp", displayName: "Corp IdP" }]);
    page("/login?next=%2Fprompts%2Fsupport");
    const link = await screen.findByRole("link", { name: "Sign in with SSO" });
    expect(link).toHaveAttribute("href", "/api/v1/auth/sso/corp/login?next=%2Fprompts%2Fsupport");
    expect(asked).toEqual(["/api/v1/auth/sso/providers"]);
    expect(screen.getByRole("button", { name: "Sign in" })).toBeInTheDocument(); // passwords still possible
  });

  it("names each provider when there are several", async () => {
    providers([
      { name: "entra", displayName: "Microsoft" },
      { name: "okta", displayName: "Okta" },
    ]);
    page("/login");
    expect(await screen.findByRole("link", { name: "Sign in with Microsoft" })).toHaveAttribute("href", "/api/v1/auth/sso/entra/login?next=%2F");
    expect(screen.getByRole("link", { name: "Sign in with Okta" })).toBeInTheDocument();
  });

  it("shows no SSO button without providers", async () => {
    const asked = providers([]);
    page("/login");
    await vi.waitFor(() => expect(asked).toHaveLength(1));
    expect(screen.queryByRole("link", { name: /SSO/ })).toBeNull();
  });

  it("explains why the identity provider's answer was refused", async () => {
    providers([{ name: "corp", displayName: "Corp" }]);
    page("/login?ssoError=sso_no_role");
    expect(await screen.findByText(/no project gives your groups a role/)).toBeInTheDocument();
    expect(await screen.findByRole("link", { name: "Sign in with SSO" })).toBeInTheDocument();
  });

  it("never returns to another site", () => {
    expect(safeNext("//evil.example.com")).toBe("/");
    expect(safeNext("/\\evil.example.com")).toBe("/");
    expect(safeNext("https://evil.example.com")).toBe("/");
    expect(safeNext("/prompts")).toBe("/prompts");
    expect(safeNext(null)).toBe("/");
  });
});

describe("signing out", () => {
  function endSession(answer: Response) {
    network.handler = async (request) => {
      expect(new URL(request.url).pathname).toBe("/api/v1/auth/sso/end-session");
      return answer;
    };
  }

  it("goes to the identity provider's end-session page after an SSO sign-in", async () => {
    endSession(json({ endSessionUrl: "http://idp.test/session/end?client_id=promptops" }));
    expect(await signOutTarget()).toBe("http://idp.test/session/end?client_id=promptops");
  });

  it("stays here for a password sign-in, an error, or an address that is not http(s)", async () => {
    endSession(json({ endSessionUrl: null }));
    expect(await signOutTarget()).toBe("/login");
    endSession(json({ type: "about:blank", title: "Forbidden", status: 403 }, 403));
    expect(await signOutTarget()).toBe("/login");
    endSession(json({ endSessionUrl: "javascript:alert(1)" }));
    expect(await signOutTarget()).toBe("/login");
  });
});
