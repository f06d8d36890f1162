"""The base every other package stands on: settings, errors, the database behind its read-only guard,
and the analysis of SQL text (its shape, its aliases). It imports nothing of the project's."""
