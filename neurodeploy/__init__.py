"""neurodeploy: spiking actors from proxy-target TD3 training to Loihi 2 deployment."""

__version__ = "0.1.0"
