"""kira.index_build"""
