"""Model services: heavy models in their own environment behind a long-lived HTTP server.

Ray Serve applications (`apps`, started by `__main__`) host this package's own in-process backends,
built through the backend registry (one adapter per model, used in both places), gather requests from
concurrent chunk tasks into batches, and load each model once per replica. They speak the wire format
that the build's clients in backends/ (`service`, `service_client`) speak, and run in an environment
that needs neither Prefect nor the orchestrator's dependencies (services/README.md).

May import: every folder below runtime/ (backends/, stages/ and down); never runtime/, flows/ or tools/.
"""
