import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, type ReactNode } from "react";
import { ApiError, api, unwrap, type Schemas } from "./api/client";

export type Me = Schemas["MeOut"];

const MeContext = createContext<Me | null>(null);

/** Who is signed in; null while signed out. */
export function useMeQuery() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => {
      try {
        return await unwrap(api.GET("/api/v1/auth/me"));
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return null;
        throw error;
      }
    },
    staleTime: 60_000,
  });
}

export function MeProvider({ me, children }: { me: Me; children: ReactNode }) {
  return <MeContext.Provider value={me}>{children}</MeContext.Provider>;
}

export function useMe(): Me {
  const me = useContext(MeContext);
  if (me === null) throw new Error("useMe outside a signed-in page");
  return me;
}

/** Whether the signed-in role has a permission (the server still checks every request). */
export function useCan(permission: string): boolean {
  return useMe().permissions.includes(permission);
}

/** Where the browser goes after signing out: the identity provider's end-session page when the session came
 * from single sign-on (it ends the provider's session too, then comes back to /login), else /login. */
export async function signOutTarget(): Promise<string> {
  try {
    const { endSessionUrl } = await unwrap(api.GET("/api/v1/auth/sso/end-session"));
    if (endSessionUrl && /^https?:\/\//i.test(endSessionUrl)) return endSessionUrl;
  } catch {
    // not an SSO session, or the provider is unreachable: sign out here only
  }
  return "/login";
}

export function useSignOut() {
  const client = useQueryClient();
  return async () => {
    const next = await signOutTarget(); // asked while still signed in
    try {
      await unwrap(api.POST("/api/v1/auth/logout"));
    } finally {
      client.clear();
      await client.invalidateQueries();
      window.location.assign(next);
    }
  };
}
