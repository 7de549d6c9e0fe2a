"""The MaskFormer track finder (issue 17): hit filter + MaskFormer on azimuth wedges."""
