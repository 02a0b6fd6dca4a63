"""The command and everything operational: LightningCLI, checkpoint resolution, fault tolerance, sweeps.

A learner may skip this folder: the models, data modules and tasks work without it."""
