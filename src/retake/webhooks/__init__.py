"""Push to agents (API.md "Push to agents"): platform events mapped to agent events, written to a durable
outbox, delivered to each agent's webhook (signed, retried, in order) and emitted on the agent's socket room.

Modules: ``envelope`` (ids, body, signature), ``targets`` (which URLs may be called), ``mapping`` (platform
event → agent events), ``rows`` (the row types), ``outbox`` (the tables: endpoints, deliveries, attempts,
claims), ``handoff`` (rows written here leased straight to this node's worker), ``worker`` (the delivery loop),
``service`` (the façade the server wires up). Nothing here imports ``retake.server``.
"""
