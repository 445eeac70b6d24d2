"""Live A/B experiments on a prompt label: sticky assignment, exposures, outcome events, sequential results."""
