"""Who is calling: access tokens, JWTs, wallet signatures, tweet verification."""
