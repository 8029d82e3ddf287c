"""Backends as a stage sees them: the registry that builds each configured backend once per worker
process, keys it by its settings and releases it when its stage is done (`registry`), and the clients
that send a stage's requests to a model service (`service`, `service_client`, `triton`, over `wire`),
whose own report is their identity. The in-process backends' modules live beside their stage.

May import: core/, records/, config/, weights/, stages/; never runtime/, serving/, flows/ or tools/.
"""
