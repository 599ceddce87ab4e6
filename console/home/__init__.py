"""The home page: what needs the signed-in person, what changed, and the Braze connection."""
