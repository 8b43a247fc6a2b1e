"""HTTP edge: middleware, authentication, response rendering."""
