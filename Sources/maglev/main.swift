import MaglevCLI

await maglevMain()
