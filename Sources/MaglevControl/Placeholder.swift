import MaglevCore
