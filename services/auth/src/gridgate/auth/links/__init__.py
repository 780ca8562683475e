"""diracx-user-link: users' DiracX links, their refresh tokens sealed in the auth service's
own small database (docs/adr/0016-diracx-user-links.md)."""
