"""scim-gateway: an event-sourced SCIM 2.0 service provider."""
