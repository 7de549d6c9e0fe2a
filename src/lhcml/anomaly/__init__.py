"""Anomaly detection of jets: DarkCLR (Favaro, Kraemer, Modak, Plehn, Rueschkamp,
arXiv:2312.03067) reproduced and varied.

A stage folder: ``data`` (jet samples -> padded ``(pT, eta, phi)`` constituents),
``augment`` (physical and anomalous augmentations, vectorised torch), ``model`` (the
transformer encoder, optionally with ParT's pair bias; the normalized autoencoder),
``losses`` (AnomCLR+, AnomCLR, SimCLR, VICReg), ``scores`` (CLR, NAE, kNN, norm
scores fitted on background), ``train`` (Lightning), ``evaluate`` (AUC, rejections,
plots). ``lhcml anomaly train|evaluate|score``; the study is in
``docs/anomaly-detection.md``.
"""
