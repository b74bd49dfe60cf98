"""modelyard.experiments: experiments, trials, trial components and their metrics."""
