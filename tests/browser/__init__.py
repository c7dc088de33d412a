"""End-to-end tests of the web console in Debian's headless Chromium, driven by Playwright."""
