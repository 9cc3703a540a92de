"""The function container's entry point (of-watchdog's fprocess): serve the one function of this image."""

from smartcity.runtime.entrypoint import main

if __name__ == "__main__":
    main()
