"""Email: what the portal's messages say and the outbox that delivers them."""
