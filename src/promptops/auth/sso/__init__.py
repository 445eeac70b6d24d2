"""Single sign-on: OpenID Connect (authorization code + PKCE) logins with just-in-time provisioning.

``oidc.py`` speaks the protocol (discovery, JWKS with rotation, ID token validation, with Authlib and joserfc);
``service.py`` holds the organization's providers, the group -> role mappings per project, the login states,
provisioning and the "SSO only" policy; ``api.py`` is the REST face.
"""
