"""MFA ceremonies, policy tiers, the pure lockout fold and event publishing (the SDK)."""
