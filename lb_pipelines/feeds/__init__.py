"""Read-only feeds served from the BI copy: the providers' calendars (and, later, who is on call)."""
