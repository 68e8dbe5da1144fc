"""TD3 and proxy-target TD3, replay buffer, training loop, evaluation, checkpoints."""
