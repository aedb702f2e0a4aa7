"""The sandbox reporting APIs of the three ad platforms (contracts §10): the same
paths, auth and row shapes as the real ones, served under /sandbox/adapi/<platform>/
by the web process outside production (AD_SANDBOX_ENABLED). Stateless: tokens are
signed by the sandbox, figures are generated from the account, ad and day."""
