"""The SCIM 2.0 protocol: filters, PATCH, resources, discovery documents, errors."""
