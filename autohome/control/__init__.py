"""What the console and the status page may see and do: the read model and actions
(panel), the shapes they show (views), the commands, each declared once (commands, with
completion), and the penalties for failed logins (penalties)."""
