"""The offline verifier: checks offline codes next to the resource, without the network.

It has no Azure dependency (the standard library only), so it runs on a kiosk or a
keypad's controller. `verifier.scheme` is shared with the service: both derive codes there.
"""
