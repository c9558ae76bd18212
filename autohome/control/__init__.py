"""What the console and the status page may see and do: the read model and actions
(panel), the shapes they show (views), and the penalties for failed logins (penalties)."""
