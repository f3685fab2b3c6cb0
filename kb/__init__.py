"""kira.kb"""
