"""Media layer: FLV parsing, GOP-cached FLV fan-out, fMP4/CMAF muxing and LL-HLS packaging.

Pure code plus small asyncio-friendly fan-out classes; no sockets and no web framework imports.
"""
