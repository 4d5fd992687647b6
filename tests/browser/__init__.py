"""Real-browser tests: Debian's headless Chromium driven by Playwright (see tools/browser.py)."""
