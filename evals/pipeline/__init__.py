"""The pipeline: plan -> evaluate -> validate -> publish -> compare, the steps the DAGs and the CLI call."""
