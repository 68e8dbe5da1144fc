"""Spiking building blocks: neurons, surrogates, slope schedules, codec, actors."""

from neurodeploy.snn.actor import (
    ActorConfig,
    AnnActor,
    SpikingActor,
    actor_from_payload,
    build_actor,
    policy_payload,
)
from neurodeploy.snn.neurons import NeuronConfig
from neurodeploy.snn.schedules import make_schedule

__all__ = [
    "ActorConfig",
    "AnnActor",
    "NeuronConfig",
    "SpikingActor",
    "actor_from_payload",
    "build_actor",
    "make_schedule",
    "policy_payload",
]
