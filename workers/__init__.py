"""Running trials: claim work from the storage, heartbeat, retry, graceful stop, progress."""
