"""The admin console: server-rendered pages under /admin/, signed in with an admin token."""
