"""Rule evaluators: the Prometheus servers and vmalerts that run AAMI's rules, what each
should run (its rule set) and what each reports it runs."""
