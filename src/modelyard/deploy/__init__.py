"""Progressive delivery: deployments, the gateway that routes among their versions,
canary with gates, blue-green, shadow, A/B tests, feedback and rollback."""
