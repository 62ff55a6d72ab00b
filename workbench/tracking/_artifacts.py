"""Artifact names every logged run uses, so readers find what writers wrote."""

TABLE_ARTIFACT = "results_table.json"
CONFIG_ARTIFACT = "config.yaml"
