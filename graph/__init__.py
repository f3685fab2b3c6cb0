"""kira.graph"""
