"""Model providers: one Protocol, an explicit registry, the mock and the HTTP providers."""
