"""Model services: heavy models in their own environment behind a long-lived HTTP server.

Two sides share the wire format (`wire`):
- the build's side (`client`, `remote`): backends that send a stage's requests to a service URL and
  take the service's own report (`GET /info`: backend, library versions, weights fingerprint) as their
  identity, so the orchestrator never imports the model library;
- the service's side (`apps`, `__main__`): Ray Serve applications that host this package's own
  in-process backends (one adapter per model, used in both places), gather requests from concurrent
  chunk tasks into batches, and load each model once per replica. It runs in an environment that needs
  neither Prefect nor the orchestrator's dependencies (services/README.md).

May import: config, errors, fingerprint, schema and the stage backends' modules; never build or flows.
"""
