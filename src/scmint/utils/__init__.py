"""Small helpers shared by the entry points: config resolvers, validation, run environment."""
