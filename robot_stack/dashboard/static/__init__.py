"""The dashboard page (HTML/JS/CSS) as package data; a package so that wheels include it."""
