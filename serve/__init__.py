"""kira.serve"""
