"""Notifications: Pushover's API and its limits (pushover), the outbox that queues, sends
and retries (outbox, held), and the `notify` callable modules are handed (notifier)."""
