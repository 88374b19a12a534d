"""What is built from the loaded runs: the SQL models, the data checks, export, report and status."""
