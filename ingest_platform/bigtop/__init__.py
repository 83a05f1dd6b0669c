"""Big Top's local→production bridge (seed 000): what the local platform collected, pushed to production."""
