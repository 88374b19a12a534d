"""The nightly job: the dlt source, incremental planning, loading, the engines it writes to, publishing."""
