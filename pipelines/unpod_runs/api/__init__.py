"""The Unpod API: the HTTP client, its retries by kind, and the errors it names."""
